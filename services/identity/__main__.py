from leadflow.runtime.launcher import launch
from services.identity.bootstrap import DEFINITION

launch(DEFINITION)
