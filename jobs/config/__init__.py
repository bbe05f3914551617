"""Settings (`config/settings.toml`) and campaign files (`config/campaigns/*.toml`), SPEC §8.

Owns: reading and validating those files into typed values, before any other stage runs.
Must not import: any other stage of `jobs` (only `jobs.errors`), sqlalchemy, jinja2, aiosmtplib.
"""
