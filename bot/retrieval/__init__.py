"""Retrieval: question analysis (`analysis`), candidate search and fusion (`candidates`), passage
context (`context`) and the optional cross-encoder re-ranking (`rerank`). The service calls
`candidates.retrieve` then `context.with_context`."""
