"""`python -m simulator.fakes ga4|meta|all --data-dir data --port N`: see server.main."""

from simulator.fakes.server import main

if __name__ == "__main__":
    main()
