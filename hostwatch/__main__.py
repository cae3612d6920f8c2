from hostwatch.cli import main

raise SystemExit(main())
