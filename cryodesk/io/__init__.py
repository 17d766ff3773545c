"""cryodesk.io: particle file formats (Qt-free).

``mrc``       MRC stacks: validated headers, byte offsets, atomic + streaming writers
``cs``        CryoSPARC ``.cs`` datasets (+ ``csdat`` for the compressed encoding), ParticleSet
``csg``       CryoSPARC ``.csg`` group manifests
``star``      RELION STAR reader/writer; ``relion``: STAR <-> ``.cs`` conversion, built from
              ``poses`` (rotation vectors <-> ZYZ Euler angles), ``relion_align`` (poses, shifts,
              subsets, classes), ``relion_optics`` (optics groups, beam tilt, magnification),
              ``relion_carry`` (CryoSPARC fields carried as ``_csparc/<field>``) and
              ``conversion`` (the report of what was mapped, carried, not converted)
``locate``    where an imported set's stacks are, never outside what the user pointed at
``validate``  check a particle set against its stacks
``gather``    batched image reads for restack (see that module)

Every problem with a file is a :class:`cryodesk.base.errors.DataError` naming it.
"""
