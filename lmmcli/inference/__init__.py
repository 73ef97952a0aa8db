"""What follows a fit: Satterthwaite and Kenward-Roger df, intervals, profiles, bootstrap, variance shares."""
