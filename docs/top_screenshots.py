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
        await pilot.press("escape", "escape", "escape", "p")  # back to the fleet, live
        await pilot.press("slash", "ctrl+a", "ctrl+k", "enter")  # the filter cleared
        await pilot.press("T", "T", "T")  # three polls back: HISTORIC
        while console.frame is None or not console.frame.historic:
            await pilot.pause(0.1)
        await pilot.pause(0.5)
        console.save_screenshot(str(DOCS / "top-historic.svg"))
        await pilot.press("q")


async def shoot_contexts(urls: list[tuple[str, str]]) -> None:
    contexts = [
        (name, RunConfig(ClientSettings(base_url=url), env=Environment(color=True)))
        for name, url in urls
    ]
    contexts.append(
        ("lab", RunConfig(ClientSettings(base_url="http://127.0.0.1:9", retries=0),
                          env=Environment(color=True)))
    )  # fmt: skip
    console = prepare(contexts[0][1], TopOptions(interval=2.0), contexts=contexts).console
    async with console.run_test(size=SIZE) as pilot:
        while console.frame is None or console.frame.polls < 3:
            await pilot.pause(0.1)
        await pilot.press("p")
        console.save_screenshot(str(DOCS / "top-contexts.svg"))
        await pilot.press("q")


def main() -> None:
    servers = [
        (name, SimulatorServer(Fleet.generate(size, seed=seed), "127.0.0.1", 0))
        for name, size, seed in (("prod", DEMO_FLEET, DEMO_SEED), ("staging", 40, 3))
    ]
    urls = [(name, server.start()) for name, server in servers]
    try:
        asyncio.run(shoot(urls[0][1]))
        asyncio.run(shoot_contexts(urls))
    finally:
        for _, server in servers:
            server.stop()


if __name__ == "__main__":
    main()
