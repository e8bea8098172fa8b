import sys

from .servers import start_early

start_early(sys.argv[1:])   # the fork server imports torch while this process does (see servers)

from .cli import main  # noqa: E402 - after the server's start

sys.exit(main())
