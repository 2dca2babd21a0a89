"""`track`: one service polled every interval, shown live on a terminal or as records.

* `command.py`: the poll loop (`track`, `TrackOptions`): scheduling, Ctrl+C and signals, piped
  records or the live view;
* `live.py`: the live view and its final summary, built from the history (pure; every tick);
* `keys.py`: `KeyListener`, the quit keys read from the terminal while the live view runs.
"""

from cli_devops.track.command import TrackOptions, track

__all__ = ["TrackOptions", "track"]
