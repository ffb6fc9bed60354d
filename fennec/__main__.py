"""``python -m fennec``: the same as the ``fennec`` console script."""

from fennec.cli import run

if __name__ == "__main__":
    run()
