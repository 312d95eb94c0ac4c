"""Names the package, its provider and its algorithms share, in a module that imports none of them."""

import os

#: The plugin's version (also ``overlap_relevance.__version__``; metadata.txt says the same).
VERSION = "0.1.0"

#: The Processing provider's id: algorithms are ``overlaprelevance:<name>``.
PROVIDER_ID = "overlaprelevance"
#: The plugin's icon (provider, algorithms, toolbox).
ICON_PATH = os.path.join(os.path.dirname(__file__), "resources", "icon.svg")
