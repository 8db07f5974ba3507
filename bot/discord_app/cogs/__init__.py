"""One cog per feature, loaded by `client.EXTENSIONS`."""
