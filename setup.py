"""Build hook: ship the task-discovery startup file (``univar_eval-autoload.pth``).

All metadata lives in setup.cfg. The only thing setup.cfg cannot express is a
file installed at the top of site-packages, which is where Python reads
``.pth`` files from; it is copied there by build_py.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "univar_eval-autoload.pth"


class BuildWithAutoload(build_py):
    def run(self):
        super().run()
        source = Path(__file__).parent / "univar_eval" / "_autoload.pth"
        target = Path(self.build_lib) / PTH
        target.parent.mkdir(parents=True, exist_ok=True)
        self.copy_file(str(source), str(target), preserve_mode=0)

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [str(Path(self.build_lib) / PTH)]


setup(cmdclass={"build_py": BuildWithAutoload})
