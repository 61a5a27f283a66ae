"""The toy multi-scale pattern map experiment shared by Figure 6 and Figure 7 (paper §3.3): the
configuration (``recipe``), the Conv and ACDA layers and their training (``training``), the detection,
shift and scale metrics (``metrics``), one seed and all seeds (``experiment``) and the figures
(``plots``). Not a reproducer itself: ``reproduce.figure6`` and ``reproduce.figure7`` report on it
(docs/reproductions.md (reproduce.figure6) describes the experiment)."""
