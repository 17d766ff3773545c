"""cryodesk.io: particle file formats (Qt-free).

``mrc``       MRC stacks: validated headers, byte offsets, atomic + streaming writers
``cs``        CryoSPARC ``.cs`` datasets (+ ``csdat`` for the compressed encoding), ParticleSet
``csg``       CryoSPARC ``.csg`` group manifests
``star``      RELION STAR reader/writer; ``relion``: STAR <-> ``.cs`` field conventions
``validate``  check a particle set against its stacks
``gather``    batched image reads for restack (see that module)

Every problem with a file is a :class:`cryodesk.base.errors.DataError` naming it.
"""
