"""A fixed list of 30 realistic member questions (the first 30 of the dev set, /work/shared/eval/dev.jsonl),
kept here so the benchmarks do not depend on that file. Three of them are not answerable from the corpus
(u-ids), as some real questions are not.
"""

QUESTIONS: list[tuple[str, str]] = [
    ('q025', 'bg actor here - if they call me in JUST to get scanned what do i get paid'),
    ('q086', 'what changed on synthetic performers between the 2023 and 2026 SAG tv/theatrical deals'),
    ('q072', 'does the NO FAKES right last after death? how long'),
    ('q052', 'narrativ deal?? how does that work'),
    ('q028', 'when was the sag strike and how long did it last'),
    ('u001', 'whats the WGA minimum for a one hour network teleplay right now'),
    ('q088', "quick one: who's the SAG-AFTRA president now, and who heads the DGA?"),
    ('q013', "can an AI generated treatment count as 'source material' and knock my credit down?"),
    ('q078', 'do UK actors have AI protections like SAG does?'),
    ('q029', 'what % ratified the 2023 sag contract and when'),
    ('q066', 'AB 1836 — how much can an estate get for an unauthorized AI replica of a dead actor?'),
    ('q003', "is AI considered a 'writer' under the WGA deal lol"),
    ('q040', 'does the sound recordings code make labels get consent to TRAIN ai on my vocals?'),
    ('q011', 'What did the AMPTP originally offer on AI before the writers strike?'),
    ('q032', 'do these AI rules apply to netflix shows or does netflix have its own contract?'),
    ('q082', 'which came first, the DGA AI deal or the WGA one, and was the DGA one considered weaker?'),
    ('q054', 'what did directors get on AI in their 2023 contract'),
    ('q047', "what are 'secondary performance payments' in the IMA"),
    ('q043', "game actor: can my digital replica keep 'working' while we're on strike?"),
    ('q016', 'whats the diffrence between an employment based digtal replica and an independently created one'),
    ('q030', 'does my sag contract stop studios from training AI on my performances?'),
    ('q083', 'SAG requires 48 hrs notice for a scan in tv/film — same in commercials?'),
    ('q017', 'production told me TONIGHT they want to scan me tomorrow morning. is that allowed?'),
    ('u005', 'what did the NLRB decide on the SAG charge against Llama Productions'),
    ('q073', "would the NO FAKES act wipe out california's AB 2602 / AB 1836?"),
    ('q068', "what's the new NY law about AI actors in ads?"),
    ('q085', 'which contract lets your replica go on strike — games or tv?'),
    ('q036', 'do voice actors in tv animation get AI protections too?'),
    ('q004', 'does the wga contract ban the studios from traning AI on our scripts?'),
    ('q020', 'can they reuse my replica from season 1 in a totally different movie?'),
]


def questions() -> list[str]:
    return [q for _, q in QUESTIONS]
