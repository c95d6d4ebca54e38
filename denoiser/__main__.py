import sys

if __name__ == "__main__":
    try:
        from .cli import main
    except KeyboardInterrupt:  # Ctrl-C while the libraries load: the same one line as later
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(main())
