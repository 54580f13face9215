"""Package discovery, the one part of the build that pyproject.toml cannot say alone.

Both packages are found, never listed: ``swci`` at the top and ``swarmlearning`` under the
``runtime/`` root. The grammar is data in ``grammar/`` shipped as the package ``swci.grammar``;
``packages.find`` in pyproject.toml cannot add a package from a directory of another name, so that
one mapping is written here. Everything else about the build is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(".", include=["swci", "swci.*"]),
        "swci.grammar",
        *find_packages("runtime", include=["swarmlearning", "swarmlearning.*"]),
    ],
    package_dir={"swci.grammar": "grammar", "swarmlearning": "runtime/swarmlearning"},
)
