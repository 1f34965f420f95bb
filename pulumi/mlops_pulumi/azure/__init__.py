"""Azure components (pulumi-azure-native 3.x): one per resource family."""
