"""What the tests share: servers started on loopback, stand-ins, runs of the
`synthetic` command, ground truths. Test modules import from here, never from
each other."""
