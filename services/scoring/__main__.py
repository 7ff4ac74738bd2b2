from leadflow.runtime.launcher import launch
from services.scoring.bootstrap import DEFINITION

launch(DEFINITION)
