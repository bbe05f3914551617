"""Development tools that never ship in the runtime packages: the demo data set and SMTP sink.

They need `aiosmtpd` and are installed with the `dev`/`test` extra only.
"""
