from leadflow.runtime.launcher import launch
from services.notify.bootstrap import DEFINITION

launch(DEFINITION)
