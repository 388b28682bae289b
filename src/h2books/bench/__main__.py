import sys

from h2books.bench.cli import main_bench

sys.exit(main_bench())
