"""Drafts in the formats FIUs receive, for an analyst to complete and file (never sent automatically).

- :mod:`finwatch.export.narrative`: the narrative of a lead (who, what, when, where, how, why), shared by every
  format.
- :mod:`finwatch.export.goaml`: goAML STR drafts, written for and validated against the FIU's own XSD, with the
  FIU's codes from a mapping file checked against the schema's code lists.
"""

from finwatch.export._mapping import GoamlMapping, UnknownCode, check_mapping, load_mapping
from finwatch.export._xsd import GoamlSchema
from finwatch.export.goaml import export_goaml
from finwatch.export.narrative import TRAFFICKING_TYPOLOGIES, narrative

__all__ = [
    "TRAFFICKING_TYPOLOGIES",
    "GoamlMapping",
    "GoamlSchema",
    "UnknownCode",
    "check_mapping",
    "export_goaml",
    "load_mapping",
    "narrative",
]
