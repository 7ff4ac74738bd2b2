"""Run the API: python -m services.gateway"""

import uvicorn

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_level="info")


main()
