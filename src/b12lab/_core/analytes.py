"""One record per analyte: canonical unit, molar mass and its source, LOINC codes, aliases.

Molar masses are chemistry, not clinical thresholds; each says which species it is, because the
choice moves a converted value (MMA as the free acid, 118.09 g/mol, differs from the dianion,
116.07 g/mol, by 1.7 %).

References
----------
[1] NHANES 2003-2004 laboratory documentation L06NB_C (B12 pg/mL x 0.738 = pmol/L; folate
    ng/mL x 2.265 = nmol/L), CDC.
[2] PubChem / NLM LHNCBC flowsheet-lhc h17.js (folate 441.4 g/mol; methylmalonate 116.0733).
[3] Molar masses from the molecular formula with IUPAC standard atomic weights.
[4] LOINC codes as listed by NLM (LHNCBC/flowsheet-lhc h17.js), ARUP 0070150, Mayo MMAP;
    14685-2 "Cobalamin (Vitamin B12) [Moles/volume] in Serum or Plasma" (Vit B12 SerPl-sCnc)
    from a LOINC table extract.
[5] 14732-2 "Folate [Moles/volume] in Serum or Plasma": the eHealth Suisse list of laboratory
    observations for external quality control (LOINC long names; ehealth_connector
    ``org.ehealth_connector.cda.ch.lab.lrqc.enums.LabObsList``), beside 2284-8 "Folate
    [Mass/volume] in Serum or Plasma". Red-cell folate (2283-0, 14731-4) is a different
    specimen and is not read as serum folate.
[6] 2428-1 "Homocysteine [Mass/volume] in Serum or Plasma" (short name Hcys SerPl-mCnc): a
    laboratory-to-LOINC mapping table giving LOINC long and short names (public SQL dump,
    table ``gen.labs``), the OMOP vocabulary's LOINC concept 3037585, and a FHIR ValueSet that
    lists it beside 13965-9 "Homocysteine [Moles/volume] in Serum or Plasma". Two other code
    files call it [Moles/volume]; all agree on homocysteine in serum or plasma, and the unit
    sent with the result, not the code, decides how it is converted.
"""

from __future__ import annotations

from dataclasses import dataclass

from b12lab.errors import UnknownAnalyteError

__all__ = ["ANALYTES", "Analyte", "get_analyte"]


@dataclass(frozen=True)
class Analyte:
    """What b12lab needs to know about one measured quantity.

    ``molar_mass`` [g/mol] is ``None`` where a mass unit must be refused (holoTC is reported in
    pmol/L only) or where no mass ⇄ substance conversion applies (eGFR).
    """

    name: str
    title: str
    canonical_unit: str
    molar_mass: float | None
    molar_mass_source: str
    loinc: tuple[str, ...]
    aliases: tuple[str, ...]


ANALYTES: dict[str, Analyte] = {
    a.name: a
    for a in (
        Analyte(
            name="b12",
            title="total vitamin B12 (serum cobalamin)",
            canonical_unit="pmol/L",
            molar_mass=1355.37,
            molar_mass_source="cyanocobalamin C63H88CoN14O14P [3]; reproduces pg/mL x 0.738 [1]",
            loinc=("2132-9", "14685-2"),
            aliases=("b12", "vitamin b12", "vit b12", "cobalamin", "total b12", "serum b12"),
        ),
        Analyte(
            name="holotc",
            title="holotranscobalamin (active B12)",
            canonical_unit="pmol/L",
            molar_mass=None,
            molar_mass_source="reported in pmol/L only; a mass unit is refused",
            loinc=(),
            aliases=("holotc", "active b12", "holotranscobalamin", "holo-tc", "holo tc"),
        ),
        Analyte(
            name="mma",
            title="methylmalonic acid (serum/plasma)",
            canonical_unit="µmol/L",
            molar_mass=118.09,
            molar_mass_source="methylmalonic acid, free acid C4H6O4 [3] (dianion 116.07 [2])",
            loinc=("13964-2",),
            aliases=("mma", "methylmalonic acid", "methylmalonate"),
        ),
        Analyte(
            name="hcy",
            title="total homocysteine (plasma)",
            canonical_unit="µmol/L",
            molar_mass=135.18,
            molar_mass_source="homocysteine C4H9NO2S [3]",
            loinc=("13965-9", "2428-1"),  # [4], [6]
            aliases=("hcy", "thcy", "homocysteine", "total homocysteine", "homocyst(e)ine"),
        ),
        Analyte(
            name="folate",
            title="serum folate",
            canonical_unit="nmol/L",
            molar_mass=441.4,
            molar_mass_source="folic acid C19H19N7O6 [2]; reproduces ng/mL x 2.265 [1]",
            loinc=("2284-8", "14732-2"),  # [4], [5]
            aliases=("folate", "serum folate", "folic acid"),
        ),
        Analyte(
            name="creatinine",
            title="serum creatinine",
            canonical_unit="µmol/L",
            molar_mass=113.12,
            molar_mass_source="creatinine C4H7N3O [3]",
            loinc=(),
            aliases=("creatinine", "serum creatinine", "crea"),
        ),
        Analyte(
            name="egfr",
            title="estimated glomerular filtration rate",
            canonical_unit="mL/min/1.73m²",
            molar_mass=None,
            molar_mass_source="not a concentration",
            loinc=(),
            aliases=("egfr", "gfr", "estimated gfr"),
        ),
    )
}


def get_analyte(name: str) -> Analyte:
    """Look an analyte up by its name or any alias, case-insensitively."""
    key = name.strip().lower()
    if key in ANALYTES:
        return ANALYTES[key]
    for analyte in ANALYTES.values():
        if key in analyte.aliases:
            return analyte
    raise UnknownAnalyteError(
        f"unknown analyte {name!r}; expected one of: {', '.join(ANALYTES)}",
        analyte=name,
        expected=tuple(ANALYTES),
    )
