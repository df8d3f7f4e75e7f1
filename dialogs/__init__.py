"""The channel-agnostic dialog engine and its flows (productivity, withdrawal)."""
