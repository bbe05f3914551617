"""Settings (`config/settings.toml`) and campaign files (`config/campaigns/*.toml`), SPEC §8.

Owns: reading and validating those files (pydantic models) into typed values, before any other
stage runs; the RUN_ID format and the run-key rule (`runs`); the one-line wording of a bad value
(`problems`); masking passwords in URLs (`secrets`).
Must not import: any other stage of `jobs` (only `jobs.errors`), sqlalchemy, jinja2, aiosmtplib.
"""
