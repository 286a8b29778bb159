"""Entry point for ``python -m codexgw`` and the zipapp (``codexgw.__main__:main`` works too)."""

from codexgw.cli.main import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
