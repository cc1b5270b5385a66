"""What happens in the simulated chain, as arrays and tables; nothing here touches a file."""
