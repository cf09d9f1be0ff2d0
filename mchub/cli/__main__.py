import sys

from mchub.cli.commands import main

sys.exit(main())
