//! Tests of this part are added here.
