import sys

from h2books.cli import main

sys.exit(main())
