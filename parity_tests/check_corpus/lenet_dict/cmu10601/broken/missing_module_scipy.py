"""The handout's first lines import scipy.io (for load_mnist): with scipy not installed where the checker
runs, importing the file fails before any layer can be checked (ModuleNotFoundError "No module named
'scipy'"), though no layer needs it."""
import scipy.io
