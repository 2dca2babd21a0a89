"""Where the fleet is read from besides the CPX API itself."""
