"""``python -m habitreward`` runs the command line."""

from habitreward.cli import main

if __name__ == "__main__":
    main()
