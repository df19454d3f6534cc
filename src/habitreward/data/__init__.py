"""Moving data in and out: the Airtable migration, export/import (JSON, CSV) and SQLite backups.

Nothing here is imported by the engine or the bot; the CLI (``cli/data.py``)
imports these modules inside its commands so ``habitreward --help`` stays fast.
"""
