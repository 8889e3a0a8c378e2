"""``python -m airflow_provider_aiml.testing``: run the emulator CLI."""

import sys

from airflow_provider_aiml.testing.cli import main

if __name__ == "__main__":
    sys.exit(main())
