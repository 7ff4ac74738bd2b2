"""Run the API: python -m services.gateway"""

import uvicorn

from services.gateway import access_log
from services.gateway.app import create_app
from services.gateway.body_limit import BodyLimit
from services.gateway.settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    config = uvicorn.Config(BodyLimit(create_app(settings), settings.max_body_bytes), host=settings.api_host, port=settings.api_port, log_level="info")
    server = uvicorn.Server(config)  # configures logging; the filter goes on afterwards
    access_log.install()
    server.run()


main()
