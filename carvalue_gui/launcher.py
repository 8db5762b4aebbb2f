"""The `carvalue` command: `carvalue predict ...` and `carvalue price ...` run the CLI (never importing Qt);
anything else (no arguments, or photo paths) opens the desktop app."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "predict":
        from core.cli import main as cli_main

        return cli_main(args[1:])
    if args and args[0] == "price":  # a car's price without a photo: no Qt, no network (issue 28)
        from core.price_cli import main as price_main

        return price_main(args[1:])
    if args and args[0] in ("--version", "-V"):
        from carvalue_gui.version import app_version

        print(f"carvalue {app_version()}")
        return 0
    if args and args[0] == "--self-test":
        from carvalue_gui.selftest import main as self_test

        return self_test(args[1:])
    from carvalue_gui.app import main as app_main  # imports Qt

    return app_main(args)


if __name__ == "__main__":
    sys.exit(main())
