"""Entry point for ``python -m hfselect`` (and ``accelerate launch -m hfselect``)."""

from hfselect.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
