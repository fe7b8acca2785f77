import sys

from comorbid.cli import main

sys.exit(main())
