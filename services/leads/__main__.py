from leadflow.runtime.launcher import launch
from services.leads.bootstrap import DEFINITION

launch(DEFINITION)
