"""Draw docs/top-*.svg: the `top` screens over the `--demo` fleet, as the README shows them.

python docs/top_screenshots.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cli_devops.cli.make_config import DEMO_FLEET, DEMO_SEED
from cli_devops.environment import Environment
from cli_devops.run_config import RunConfig
from cli_devops.settings import ClientSettings
from cli_devops.simulator import Fleet, SimulatorServer
from cli_devops.top.command import TopOptions, prepare

DOCS = Path(__file__).parent
SIZE = (120, 32)
POLLS = 12


async def shoot(url: str) -> None:
    app = RunConfig(ClientSettings(base_url=url), env=Environment(color=True))
    console = prepare(app, TopOptions(interval=2.0)).console
    async with console.run_test(size=SIZE) as pilot:
        while console.frame is None or console.frame.polls < POLLS:
            await pilot.pause(0.1)
        await pilot.press("p")  # hold still while the screens are drawn
        console.save_screenshot(str(DOCS / "top-fleet.svg"))
        frame = console.frame
        assert frame is not None
        chosen = max(frame.services, key=lambda row: (row.outliers, row.unhealthy))
        await pilot.press("slash", *chosen.service, "enter", "enter")
        await pilot.pause()
        console.save_screenshot(str(DOCS / "top-service.svg"))
        await pilot.press("enter")
        await pilot.pause()
        console.save_screenshot(str(DOCS / "top-instance.svg"))
        await pilot.press("question_mark")
        await pilot.pause()
        console.save_screenshot(str(DOCS / "top-help.svg"))
        await pilot.press("q")


def main() -> None:
    server = SimulatorServer(Fleet.generate(DEMO_FLEET, seed=DEMO_SEED), "127.0.0.1", 0)
    url = server.start()
    try:
        asyncio.run(shoot(url))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
