from dentbook.cli import main

raise SystemExit(main())
