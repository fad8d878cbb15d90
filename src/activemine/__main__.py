from activemine.cli import main

main()
