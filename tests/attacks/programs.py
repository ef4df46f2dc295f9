"""Hostile programs for the sandbox tests: each must end not verified, with the judge alive and no file written.

Every puzzle here is unsatisfiable, so `verified` can only mean the program fooled or escaped the judge.
CANARY is the path an attack tries to create; the tests check it never appears.
"""

CANARY = "/tmp/sandbox_attack_canary"

UNSAT_INT = "def sat(x: int):\n    return x * x == -1"
UNSAT_LIST = "def sat(x: List[int]):\n    return x == [1, 2] and x != [1, 2]"
UNSAT_STR = "def sat(s: str):\n    return s == 'a' and s == 'b'"


def sol(body: str) -> str:
    return "def sol():\n" + "".join(f"    {line}\n" for line in body.strip("\n").splitlines())


# (name, sat source, sol source)
ATTACKS: list[tuple[str, str, str]] = [
    # file I/O
    ("open_write", UNSAT_INT, sol(f"open({CANARY!r}, 'w').write('x')\nreturn 0")),
    ("open_read_passwd", UNSAT_INT, sol("return len(open('/etc/passwd').read())")),
    ("io_module", UNSAT_INT, "import io\n" + sol(f"io.open({CANARY!r}, 'w')\nreturn 0")),
    ("pathlib_write", UNSAT_INT, "import pathlib\n" + sol(f"pathlib.Path({CANARY!r}).write_text('x')\nreturn 0")),
    ("shutil", UNSAT_INT, "import shutil\n" + sol("shutil.rmtree('/tmp')\nreturn 0")),
    # process exec
    ("os_system", UNSAT_INT, "import os\n" + sol(f"os.system('touch {CANARY}')\nreturn 0")),
    ("subprocess", UNSAT_INT, "import subprocess\n" + sol(f"subprocess.run(['touch', {CANARY!r}])\nreturn 0")),
    ("import_inside", UNSAT_INT, sol(f"import os\nos.system('touch {CANARY}')\nreturn 0")),
    ("dunder_import", UNSAT_INT, sol(f"__import__('os').system('touch {CANARY}')\nreturn 0")),
    ("importlib", UNSAT_INT, "import importlib\n" + sol("return importlib.import_module('os').getpid()")),
    # ctypes
    ("ctypes", UNSAT_INT, "import ctypes\n" + sol("ctypes.string_at(0)\nreturn 0")),
    ("ctypes_from", UNSAT_INT, "from ctypes import CDLL\n" + sol("return CDLL(None).getpid()")),
    # import tricks
    ("subclasses_walk", UNSAT_INT, sol("return ().__class__.__bases__[0].__subclasses__()")),
    ("mro_walk", UNSAT_INT, sol("return type(0).mro()[-1]")),
    ("func_globals", UNSAT_INT, sol("f = lambda: 0\nreturn f.__globals__['__builtins__']")),
    ("frame_walk", UNSAT_INT, sol("g = (i for i in [1])\nreturn g.gi_frame.f_back.f_globals")),
    ("traceback_walk", UNSAT_INT, sol("try:\n    1/0\nexcept Exception as e:\n    return e.__traceback__.tb_frame")),
    ("code_object", UNSAT_INT, sol("f = lambda: 0\nreturn f.__code__.co_code")),
    ("module_sys", UNSAT_INT, "import random\n" + sol("return random._os.getpid()")),
    ("module_chain", UNSAT_INT, "import collections\n" + sol("return collections.sys.modules['os'].getpid()")),
    ("from_module_sys", UNSAT_INT, "from re import sys\n" + sol("return 0")),
    ("math_self", UNSAT_INT, "import math\n" + sol("return math.sqrt.__self__")),
    ("unicode_exec", UNSAT_INT, sol("ｅｘｅｃ('import os')\nreturn 0")),
    ("unicode_dunder", UNSAT_INT, sol("return ().__ｃｌａｓｓ__")),
    ("builtins_dict", UNSAT_INT, sol("return __builtins__['open']")),
    ("relative_import", UNSAT_INT, "from . import x\n" + sol("return 0")),
    ("operator_attrgetter", UNSAT_INT, "import operator\n" + sol("return operator.attrgetter('__class__')(0)")),
    # format strings
    ("format_walk", UNSAT_STR, sol("return '{0.__class__.__mro__}'.format(0)")),
    ("format_runtime", UNSAT_STR, sol("t = '{0._' + '_class__}'\nreturn t.format(0)")),
    ("format_map", UNSAT_STR, sol("return '{x.real}'.format_map({'x': 1})")),
    ("format_nested_spec", UNSAT_STR, sol("t = '{0:{1.__class__}}'\nreturn t.format(1, 2)")),
    # getattr with built strings, exec/eval/compile
    ("getattr_built", UNSAT_INT, sol("return getattr(0, '__cl' + 'ass__')")),
    ("vars_dir", UNSAT_INT, sol("return vars()")),
    ("exec_call", UNSAT_INT, sol("exec('import os')\nreturn 0")),
    ("eval_escape", UNSAT_INT, sol("return eval('__import__(\"os\").getpid()')")),
    ("eval_built_dunder", UNSAT_INT, sol("return eval('().' + '__class__')")),
    ("eval_namespace", UNSAT_INT, sol("return eval('1', {'__builtins__': None})")),
    ("compile_call", UNSAT_INT, sol("return compile('1', 'x', 'eval')")),
    ("globals_call", UNSAT_INT, sol("return globals()")),
    ("type_three_args", UNSAT_INT, sol("C = type('C', (int,), {})\nreturn C(1)")),
    # loops, timeouts, memory, recursion, forks, signals, exits
    ("infinite_loop", UNSAT_INT, sol("while True:\n    pass")),
    ("c_level_loop", UNSAT_INT, sol("return sum(range(10 ** 18))")),
    ("huge_pow", UNSAT_INT, sol("return len(str(10 ** (10 ** 9)))")),
    (
        "catch_timeout",
        UNSAT_INT,
        sol("while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass"),
    ),
    ("memory_bomb", UNSAT_INT, sol("x = [0] * (10 ** 10)\nreturn 0")),
    ("memory_grow", UNSAT_INT, sol("x = []\nwhile True:\n    x.append('a' * 10 ** 6)")),
    ("deep_recursion", UNSAT_INT, sol("def f(n):\n    return f(n + 1)\nreturn f(0)")),
    ("deep_nesting", UNSAT_INT, sol("x = []\nfor i in range(10 ** 6):\n    x = [x]\nreturn str(x)")),
    ("parser_bomb", UNSAT_INT, "def sol():\n    return " + "(" * 5000 + "0" + ")" * 5000 + "\n"),
    ("fork_bomb", UNSAT_INT, "import os\n" + sol("while True:\n    os.fork()")),
    ("multiprocessing", UNSAT_INT, "import multiprocessing\n" + sol("return 0")),
    ("kill_parent", UNSAT_INT, "import os, signal\n" + sol("os.kill(os.getppid(), signal.SIGKILL)\nreturn 0")),
    ("sys_exit", UNSAT_INT, "import sys\n" + sol("sys.exit(0)")),
    ("raise_system_exit", UNSAT_INT, sol("raise SystemExit(0)")),
    ("exit_builtin", UNSAT_INT, sol("exit(0)")),
    ("os_exit", UNSAT_INT, "import os\n" + sol("os._exit(0)")),
    # tampering with builtins, the checker, shared modules
    ("shadow_builtin", UNSAT_INT, sol("global type\ntype = lambda x: int\nreturn 0")),
    ("patch_shared_module", UNSAT_INT, "import math\n" + sol("math.sqrt = lambda x: 0\nreturn 0")),
    ("patch_collections", UNSAT_INT, "import collections\n" + sol("collections.Counter.most_common = None\nreturn 0")),
    ("patch_builtin_type", UNSAT_INT, sol("int.real = 5\nreturn 0")),
    ("patch_list_method", UNSAT_LIST, sol("list.copy = lambda self: [1, 2]\nreturn [1, 2]")),
    ("guard_rebind", UNSAT_INT, sol("_getattr_ = getattr\nreturn 0")),
    ("sat_patches_nothing", "def sat(x: int):\n    import builtins\n    return True", sol("return 1")),
    ("sat_sees_sol_globals", "def sat(x: int):\n    return marker == 1", "marker = 1\n" + sol("return 1")),
    # lying answers
    (
        "int_subclass_eq",
        UNSAT_INT,
        "class Liar(int):\n    def __eq__(self, o):\n        return True\n" + sol("return Liar(0)"),
    ),
    (
        "list_subclass",
        UNSAT_LIST,
        "class L(list):\n    def __eq__(self, o):\n        return True\n"
        "    def __ne__(self, o):\n        return False\n" + sol("return L([1, 2])"),
    ),
    ("bool_lie", UNSAT_INT, "class B:\n    def __bool__(self):\n        return True\n" + sol("return B()")),
    ("bool_not_int", UNSAT_INT, sol("return True")),
    (
        "nested_liar",
        UNSAT_LIST,
        "class L(int):\n    def __eq__(self, o):\n        return True\n" + sol("return [L(1), L(2)]"),
    ),
    ("sat_returns_truthy", "def sat(x: int):\n    return 1", sol("return 1")),
    (
        "answer_mutates_later",
        "def sat(x: List[int]):\n    return len(x) == 0 and len(x) == 1",
        "keep = []\n" + sol("return keep"),
    ),
    # __del__ side effects, threads, output floods, network, environment
    (
        "del_side_effect",
        UNSAT_INT,
        "class D:\n    def __del__(self):\n        open('/tmp/x', 'w')\n" + sol("d = D()\nreturn 0"),
    ),
    ("threads", UNSAT_INT, "import threading\n" + sol("threading.Thread(target=lambda: None).start()\nreturn 0")),
    ("print_flood", UNSAT_INT, sol("while True:\n    print('x' * 10 ** 6)")),
    ("stderr_flood", UNSAT_INT, "import sys\n" + sol("sys.stderr.write('x')\nreturn 0")),
    ("socket", UNSAT_INT, "import socket\n" + sol("socket.create_connection(('1.1.1.1', 80))\nreturn 0")),
    ("urllib", UNSAT_INT, "import urllib.request\n" + sol("return 0")),
    ("environ", UNSAT_STR, "import os\n" + sol("return os.environ.get('HOME', '')")),
    ("proc_environ", UNSAT_STR, sol("return open('/proc/self/environ').read()")),
    ("signal_handler", UNSAT_INT, "import signal\n" + sol("signal.signal(signal.SIGALRM, signal.SIG_IGN)\nreturn 0")),
    ("huge_reason", UNSAT_INT, sol("raise ValueError('\\n' * 10 ** 6)")),
    (
        "custom_exception_str",
        UNSAT_INT,
        "class E(Exception):\n    def __str__(self):\n        return 'x' * 10\n" + sol("raise E()"),
    ),
    ("generator_frame", UNSAT_INT, sol("def g():\n    yield 1\nreturn g().gi_code")),
    (
        "random_state_leak",
        "def sat(x: int):\n    import random\n    return random.random() == x",
        "import random\n" + sol("random.seed(5)\nreturn 2"),
    ),
]
