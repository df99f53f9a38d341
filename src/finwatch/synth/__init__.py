"""A seeded synthetic world of banks, people, businesses and crypto, with labelled laundering typologies."""

from finwatch.synth._exports import MANIFEST, save_world
from finwatch.synth._world import World, generate_world
from finwatch.synth.config import ALL_EXPORTS, LOOKALIKES, TYPOLOGIES, WorldConfig, typology_mix

__all__ = [
    "ALL_EXPORTS",
    "LOOKALIKES",
    "MANIFEST",
    "TYPOLOGIES",
    "World",
    "WorldConfig",
    "generate_world",
    "save_world",
    "typology_mix",
]
