from paperkit.cli import main

raise SystemExit(main())
