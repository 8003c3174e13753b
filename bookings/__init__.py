"""The Zero Excess Capacity marketplace: offered rooms, booking requests, ghost bookings."""
