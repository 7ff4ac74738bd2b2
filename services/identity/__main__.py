from leadflow.runtime.launcher import launch
from services.identity.bootstrap import bootstrap, prepare_store
from services.identity.settings import IdentitySettings

launch(settings_class=IdentitySettings, prepare_store=prepare_store, bootstrap=bootstrap)
