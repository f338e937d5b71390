import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SIM_DIR = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(SIM_DIR))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
sys.path.insert(0, SIM_DIR)
sys.path.insert(0, HERE)
