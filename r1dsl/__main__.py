import sys

from r1dsl.cli import main

sys.exit(main())
